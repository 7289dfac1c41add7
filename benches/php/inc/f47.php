<?php
function bench_inc_f47(int $x): int
{
    return $x * 48 + 1;
}

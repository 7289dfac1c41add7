<?php
function bench_inc_f21(int $x): int
{
    return $x * 22 + 1;
}

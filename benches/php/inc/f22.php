<?php
function bench_inc_f22(int $x): int
{
    return $x * 23 + 1;
}

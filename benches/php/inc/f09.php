<?php
function bench_inc_f09(int $x): int
{
    return $x * 10 + 1;
}

<?php
function bench_inc_f25(int $x): int
{
    return $x * 26 + 1;
}

<?php
function bench_inc_f10(int $x): int
{
    return $x * 11 + 1;
}

<?php
function bench_inc_f13(int $x): int
{
    return $x * 14 + 1;
}

<?php
function bench_inc_f23(int $x): int
{
    return $x * 24 + 1;
}

<?php
function bench_inc_f27(int $x): int
{
    return $x * 28 + 1;
}

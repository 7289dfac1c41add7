<?php
function bench_inc_f39(int $x): int
{
    return $x * 40 + 1;
}

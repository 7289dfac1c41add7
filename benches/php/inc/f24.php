<?php
function bench_inc_f24(int $x): int
{
    return $x * 25 + 1;
}

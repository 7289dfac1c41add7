<?php
function bench_inc_f12(int $x): int
{
    return $x * 13 + 1;
}

<?php
function bench_inc_f40(int $x): int
{
    return $x * 41 + 1;
}

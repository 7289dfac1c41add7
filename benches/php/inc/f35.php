<?php
function bench_inc_f35(int $x): int
{
    return $x * 36 + 1;
}

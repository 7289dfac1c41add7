<?php
function bench_inc_f46(int $x): int
{
    return $x * 47 + 1;
}

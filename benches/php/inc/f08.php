<?php
function bench_inc_f08(int $x): int
{
    return $x * 9 + 1;
}

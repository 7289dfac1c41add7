<?php
function bench_inc_f45(int $x): int
{
    return $x * 46 + 1;
}

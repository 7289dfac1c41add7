<?php
function bench_inc_f28(int $x): int
{
    return $x * 29 + 1;
}

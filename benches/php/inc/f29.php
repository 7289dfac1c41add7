<?php
function bench_inc_f29(int $x): int
{
    return $x * 30 + 1;
}

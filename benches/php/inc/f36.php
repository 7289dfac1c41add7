<?php
function bench_inc_f36(int $x): int
{
    return $x * 37 + 1;
}

<?php
function bench_inc_f42(int $x): int
{
    return $x * 43 + 1;
}

<?php
function bench_inc_f26(int $x): int
{
    return $x * 27 + 1;
}

<?php
function bench_inc_f30(int $x): int
{
    return $x * 31 + 1;
}

<?php
function bench_inc_f32(int $x): int
{
    return $x * 33 + 1;
}

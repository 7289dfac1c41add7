<?php function counter() { static $n = 0; return ++$n; } counter(); echo counter(); echo isset($GLOBALS["leak"]) ? " leaked" : " clean"; $GLOBALS["leak"] = 1;

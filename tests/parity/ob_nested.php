<?php ob_start(); echo "a"; ob_start(); echo "b"; $inner = ob_get_clean(); echo strtoupper($inner); ob_end_flush();

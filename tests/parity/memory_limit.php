<?php ini_set("memory_limit", "16M"); $a = []; while (true) { $a[] = str_repeat("x", 1 << 20); }

<?php require __DIR__ . "/lib/inc.php"; echo parity_inc(), " ", count(get_included_files());

<?php echo var_export(getenv("FEPHP_PARITY"), true); putenv("FEPHP_PARITY=set"); echo " ", getenv("FEPHP_PARITY");

<?php ksort($_REQUEST); var_export($_REQUEST);

<?php var_export($_POST);

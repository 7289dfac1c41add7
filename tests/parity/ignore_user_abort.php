<?php echo var_export((bool) ignore_user_abort(), true); ignore_user_abort(true); echo " ", var_export((bool) ignore_user_abort(), true), " ", connection_aborted(), " ", connection_status();

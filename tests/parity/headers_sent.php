<?php echo var_export(headers_sent(), true); flush(); echo " ", var_export(headers_sent(), true);

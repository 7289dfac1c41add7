<?php echo setlocale(LC_ALL, 0); setlocale(LC_ALL, "C.UTF-8"); echo " ", setlocale(LC_ALL, 0);

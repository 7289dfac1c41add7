<?php $a = []; echo @$a["missing"]; echo $a["missing"] ?? "default"; echo intdiv(10, 3);

<?php $in = file_get_contents("php://input"); echo strlen($in), " ", md5($in), " ", file_get_contents("php://input") === $in ? "rereadable" : "once";

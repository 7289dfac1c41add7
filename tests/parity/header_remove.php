<?php header("X-Keep: 1"); header("X-Drop: 1"); header_remove("X-Drop"); echo "ok";

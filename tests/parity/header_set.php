<?php header("X-One: 1"); header("X-Two: 2"); header("X-One: replaced"); header("X-Add: a", false); header("X-Add: b", false); echo "ok";

<?php header("X-Head: yes"); echo "body that HEAD must not send";

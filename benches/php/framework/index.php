<?php
// Classic mode: every request boots the application, then handles itself.
(require __DIR__ . '/bootstrap.php')->handle();

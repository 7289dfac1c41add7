<?php printf("%04o", umask()); umask(0077); printf(" %04o", umask());

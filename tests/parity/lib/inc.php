<?php function parity_inc() { return "included"; }

<?php ob_start(); echo "one "; ob_flush(); flush(); echo "two "; ob_end_flush(); echo "three";

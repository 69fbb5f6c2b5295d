#!/bin/sh
echo "app $APP_VERSION in $APP_HOME as $(id -un): $*"

#!/bin/sh
echo "hello from the multi-stage image"

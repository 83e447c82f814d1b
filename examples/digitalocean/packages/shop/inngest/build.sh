#!/bin/bash
# Run by `doctl serverless deploy`: install the dependencies into the function's virtualenv.
set -e
virtualenv --without-pip virtualenv
pip install -r requirements.txt --target virtualenv/lib/python3.11/site-packages

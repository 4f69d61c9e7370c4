# Thin entry points; the scripts under tools/ do the work and say why.
.PHONY: run test build bench drill
run:
	tools/run.sh
test:
	tools/test.sh
build:
	tools/setup.sh && tools/build.sh
bench: build
	tools/bench.sh
drill:
	tools/drill.sh

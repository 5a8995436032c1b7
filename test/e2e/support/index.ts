// Entry point for the e2e suites: `import { ... } from './support/index.ts'`.
export { requireDocker, removeContainers, imageExists, containerIp, bridgeGateway, dockerExec, dockerExecOk, writeFileInContainer } from './docker.ts';
export type { ExecResult } from './docker.ts';
export { HOSTUSR_IMAGE, PYTHON_IMAGE, SYSTEMD_IMAGE, REPO_DIR, CACHE_DIR, buildHostUsrImage, buildPythonImage, buildSystemdImage, debianMirror } from './images.ts';
export {
  REPO_MOUNT,
  CONTAINER_NODE,
  OLLAMA_UNIT,
  OLLAMA_WRAPPER,
  startSystemdContainer,
  installOllamaUnit,
  waitForOllamaInContainer,
  containerLocalGet,
  setOllamaDropIn,
} from './systemd.ts';
export type { SystemdContainerOptions } from './systemd.ts';
export { probeFrom } from './probe.ts';
export type { ProbeResult, ProbeOptions, ProbeErrorKind } from './probe.ts';
export { sh, shTry, sleep, waitFor, retry } from './shell.ts';
export { startStandin, expectStandinFailure, freePort, printBind, STANDIN_PATH } from '../../support/standin-process.ts';
export type { RunningStandin, StandinOptions } from '../../support/standin-process.ts';

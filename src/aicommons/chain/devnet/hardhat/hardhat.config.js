// Minimal hardhat config for aicommons tests and benchmarks: a local JSON-RPC node only.
// Nothing to compile, so hardhat never downloads a compiler; scratch files go to a temp dir.
const os = require("os");
const path = require("path");

const scratch = process.env.AIC_HARDHAT_SCRATCH || path.join(os.tmpdir(), "aicommons-hardhat");

module.exports = {
  paths: {
    sources: path.join(scratch, "contracts"),
    cache: path.join(scratch, "cache"),
    artifacts: path.join(scratch, "artifacts"),
  },
  networks: { hardhat: { chainId: 31337 } },
};

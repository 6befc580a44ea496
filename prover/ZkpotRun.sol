// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The run proof's verifier, rendered by ezkl (create_evm_verifier_aggr): it checks the proof and
/// folds the proof's KZG accumulator (instances 0..15) into its own final pairing.
interface IRunProofVerifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

/// A zkpot run on chain: the run proof must verify, and its public hashes must say what the run
/// claims, checked as zkpot's off-chain verifier does (base, chain, final, schedule).
///
/// The run's claims are constructor arguments, public to read: a caller compares them with the
/// published bundle (the base and final commitments in its manifest, the batch commitments of
/// dataset.json in the public schedule order; that they hash to the dataset root is not checked here).
/// Instances of a one-level fold: 16 accumulator limbs, then per chunk proof
/// H(state_in), H(batch_1..S), H(salt_out), H(state_out).
contract ZkpotRun {
    uint256 internal constant ACC = 16;

    IRunProofVerifier public immutable verifier;
    uint256 public immutable base;
    uint256 public immutable finalCommitment;
    uint256 public immutable stepsPerProof;
    uint256[] public batches; // one committed batch hash per SGD step, in schedule order

    constructor(IRunProofVerifier verifier_, uint256 base_, uint256 final_, uint256 stepsPerProof_,
                uint256[] memory batches_) {
        require(stepsPerProof_ > 0 && batches_.length > 0 && batches_.length % stepsPerProof_ == 0, "schedule shape");
        verifier = verifier_;
        base = base_;
        finalCommitment = final_;
        stepsPerProof = stepsPerProof_;
        batches = batches_;
    }

    /// True iff the run proof verifies and its instances are this run's; reverts with the failed check otherwise.
    /// The verifier's own signature, so that the calldata of `ezkl.encode_evm_calldata` serves both.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool) {
        uint256 s = stepsPerProof;
        uint256 width = s + 3;
        uint256 chunks = batches.length / s;
        require(instances.length == ACC + chunks * width, "instances: not this run's shape");
        require(instances[ACC] == base, "base");
        for (uint256 c = 0; c < chunks; c++) {
            uint256 at = ACC + c * width;
            if (c > 0) require(instances[at] == instances[at - 1], "chain");
            for (uint256 i = 0; i < s; i++) {
                require(instances[at + 1 + i] == batches[c * s + i], "schedule");
            }
        }
        require(instances[instances.length - 1] == finalCommitment, "final");
        require(verifier.verifyProof(proof, instances), "proof");
        return true;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The run proof's verifier, rendered by ezkl (create_evm_verifier_aggr): it checks the proof and
/// folds the proof's own KZG accumulator (instances 0..15) into its final pairing.
interface IRunProofVerifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

/// A zkpot run on chain: the run proof must verify, every KZG accumulator it passes through must pair,
/// and its public hashes must say what the run claims, checked as zkpot's off-chain verifier does
/// (base, chain, final, schedule; the decider's pairing on every accumulator).
///
/// The run's claims are constructor arguments, public to read: a caller compares them with the
/// published bundle (the base and final commitments in its manifest, the batch commitments of
/// dataset.json in the public schedule order; that they hash to the dataset root is not checked here;
/// the G2 points with the SRS's last 256 bytes).
/// Instances of a fold tree (spec/fold_plan.py): a node's 16 accumulator limbs, then each child's
/// instances in order, down to each chunk proof's H(state_in), H(batch_1..S), H(salt_out), H(state_out).
/// The verifier pairs the top node's accumulator; a node below it was verified inside its parent
/// except for its own deferred pairing, which its parent passes through as plain instances: this
/// contract pairs each of those, e(lhs, [1]_2) = e(rhs, [s]_2), with the precompile at 0x08.
contract ZkpotRun {
    uint256 internal constant ACC = 16;
    uint256 internal constant LIMB_BITS = 68;
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    IRunProofVerifier public immutable verifier;
    uint256 public immutable base;
    uint256 public immutable finalCommitment;
    uint256 public immutable stepsPerProof;
    uint256 public immutable fanIn;
    uint256[] public batches;     // one committed batch hash per SGD step, in schedule order
    uint256[4] public g2;         // [1]_2 and [s]_2 of the SRS, as EIP-197 takes them: x.c1, x.c0, y.c1, y.c0
    uint256[4] public sG2;
    uint256[] public leafAt;      // where each chunk proof's instances start, in chunk order
    uint256[] public innerAccAt;  // where each accumulator below the top node starts
    uint256 public instanceCount;

    constructor(IRunProofVerifier verifier_, uint256 base_, uint256 final_, uint256 stepsPerProof_,
                uint256 fanIn_, uint256[] memory batches_, uint256[4] memory g2_, uint256[4] memory sG2_) {
        require(stepsPerProof_ > 0 && batches_.length > 0 && batches_.length % stepsPerProof_ == 0, "schedule shape");
        uint256 chunks = batches_.length / stepsPerProof_;
        require(fanIn_ > 1 || (fanIn_ == 1 && chunks == 1), "fan-in");
        verifier = verifier_;
        base = base_;
        finalCommitment = final_;
        stepsPerProof = stepsPerProof_;
        fanIn = fanIn_;
        batches = batches_;
        g2 = g2_;
        sG2 = sG2_;
        // widths[d]: the nodes of level d (level 0: the chunk proofs), until one is left (spec/fold_plan.plan)
        uint256 levels = 1;
        for (uint256 w = (chunks + fanIn_ - 1) / fanIn_; w > 1; w = (w + fanIn_ - 1) / fanIn_) levels++;
        uint256[] memory widths = new uint256[](levels + 1);
        widths[0] = chunks;
        for (uint256 d = 1; d <= levels; d++) widths[d] = (widths[d - 1] + fanIn_ - 1) / fanIn_;
        instanceCount = _walk(0, levels, 0, levels, widths, fanIn_, stepsPerProof_ + 3);
    }

    function _walk(uint256 pos, uint256 depth, uint256 index, uint256 levels, uint256[] memory widths,
                   uint256 fanIn_, uint256 leafWidth) internal returns (uint256) {
        if (depth == 0) {
            leafAt.push(pos);
            return pos + leafWidth;
        }
        if (depth < levels) innerAccAt.push(pos);
        pos += ACC;
        uint256 end = index * fanIn_ + fanIn_;
        if (end > widths[depth - 1]) end = widths[depth - 1];
        for (uint256 c = index * fanIn_; c < end; c++) pos = _walk(pos, depth - 1, c, levels, widths, fanIn_, leafWidth);
        return pos;
    }

    /// True iff the run proof verifies and its instances are this run's; reverts with the failed check otherwise.
    /// The verifier's own signature, so that the calldata of `ezkl.encode_evm_calldata` serves both.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool) {
        uint256 s = stepsPerProof;
        uint256 chunks = leafAt.length;
        require(instances.length == instanceCount, "instances: not this run's shape");
        require(instances[leafAt[0]] == base, "base");
        for (uint256 c = 0; c < chunks; c++) {
            uint256 at = leafAt[c];
            if (c > 0) require(instances[at] == instances[leafAt[c - 1] + s + 2], "chain");
            for (uint256 i = 0; i < s; i++) {
                require(instances[at + 1 + i] == batches[c * s + i], "schedule");
            }
        }
        require(instances[leafAt[chunks - 1] + s + 2] == finalCommitment, "final");
        for (uint256 a = 0; a < innerAccAt.length; a++) {
            require(accumulatorPairs(instances, innerAccAt[a]), "accumulator");
        }
        require(verifier.verifyProof(proof, instances), "proof");
        return true;
    }

    /// e(lhs, [1]_2) = e(rhs, [s]_2) for the accumulator at instances[at .. at + 16): lhs.x, lhs.y, rhs.x, rhs.y,
    /// 4 little-endian 68-bit limbs each (verifier/decider.py off chain). False for a malformed one too.
    function accumulatorPairs(uint256[] calldata instances, uint256 at) public view returns (bool) {
        uint256[4] memory xy;
        for (uint256 k = 0; k < 4; k++) {
            uint256 v = 0;
            for (uint256 i = 0; i < 4; i++) {
                uint256 limb = instances[at + 4 * k + i];
                if (limb >> (i == 3 ? 256 - 3 * LIMB_BITS : LIMB_BITS) != 0) return false;  // (no bit lost to the shift)
                v |= limb << (LIMB_BITS * i);
            }
            if (v >= Q) return false;
            xy[k] = v;
        }
        if ((xy[0] == 0 && xy[1] == 0) || (xy[2] == 0 && xy[3] == 0)) return false;  // (0,0): the precompile's infinity
        uint256[12] memory input = [xy[0], xy[1], g2[0], g2[1], g2[2], g2[3],
                                    xy[2], (Q - xy[3]) % Q, sG2[0], sG2[1], sG2[2], sG2[3]];
        uint256[1] memory out;
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x08, input, 384, out, 32)
        }
        return ok && out[0] == 1;
    }
}

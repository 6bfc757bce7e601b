package bus

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAgentBatchID: the id of an agent batch names the agent, its process,
// the batch's minute and the batch, never the gateway that credits it, and
// it survives the codec.
func TestAgentBatchID(t *testing.T) {
	b, err := AgentBatch("farm1", 0xfedcba9876543210, 1700000059, 42)
	require.NoError(t, err)
	require.True(t, b.IsAgent())
	require.Equal(t, int64(1700000040), b.Minute)
	b.Workers = []WorkerStats{{User: "alice", Worker: "rig1", Accepted: 3, DiffSum: 3e-12, GoalSum: 1e-3}}
	var got StatsBatch
	require.NoError(t, got.Unmarshal(b.Marshal()))
	require.Equal(t, b.ID(), got.ID())
	require.Equal(t, "agent:farm1.-81985529216486896.1700000040.42", got.ID())
	again, err := AgentBatch("farm1", 0xfedcba9876543210, 1700000041, 42)
	require.NoError(t, err)
	require.Equal(t, b.ID(), again.ID(), "same minute, same batch: same id")
	_, err = AgentBatch("farm1", 1, 1700000000, 0)
	require.Error(t, err)
	_, err = AgentBatch("farm1", 1, 1700000000, 1<<32)
	require.Error(t, err)
	require.False(t, (&StatsBatch{Gateway: "gw1"}).IsAgent())
}

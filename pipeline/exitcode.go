package pipeline

// Runner exit codes. Codes at or above ExitUsage mean the same task would
// fail again: the controller's podFailurePolicy fails the Job at once
// instead of retrying. ExitFailure is everything worth a retry (a network
// error, a killed pod).
const (
	ExitOK      = 0
	ExitFailure = 1
	// ExitUsage: the task or the command line is malformed.
	ExitUsage = 64
	// ExitBadInput: the model or the dataset cannot be used as asked.
	ExitBadInput = 65
	// ExitNotFound: an input URI names nothing.
	ExitNotFound = 66
	// ExitDenied: storage refused access.
	ExitDenied = 77
)

// PermanentExitCodes are the exit codes no retry can fix.
var PermanentExitCodes = []int32{ExitUsage, ExitBadInput, ExitNotFound, ExitDenied}

// ExitReason names an exit code for status and events.
func ExitReason(code int32) string {
	switch code {
	case ExitOK:
		return "Succeeded"
	case ExitUsage:
		return "InvalidTask"
	case ExitBadInput:
		return "BadInput"
	case ExitNotFound:
		return "InputNotFound"
	case ExitDenied:
		return "AccessDenied"
	default:
		return "StageFailed"
	}
}

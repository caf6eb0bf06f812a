// The browser's side of the contract: the rules proto/ declares (buf.validate annotations,
// compiled into the generated stubs), checked by protovalidate before a request is sent, and the
// server's own verdict (a google.rpc.BadRequest in an INVALID_ARGUMENT) read the same way. One
// set of rules for both: tests/contract/create_task_requests.json is checked on both sides.
import { createRegistry, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { ConnectError } from "@connectrpc/connect";
import { createValidator } from "@bufbuild/protovalidate";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb";
import { file_pixelflow_v1_rules } from "../gen/pixelflow/v1/rules_pb";

export interface Violation {
  /** The field's path with proto names, as the server writes it: `operations[0].resize.width`. */
  field: string;
  /** The rule's id: `uint32.lte`, `required`, or a CEL rule's own (`crop.box_or_gravity`). */
  rule: string;
  message: string;
}

// The shared rules of rules.proto are extensions protovalidate must be told about.
const validator = createValidator({ registry: createRegistry(file_pixelflow_v1_rules) });

/** Every rule `message` breaks; empty when it is valid. */
export function violationsOf<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Violation[] {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return [];
  if (result.kind === "error") throw result.error;
  return result.violations.map((violation) => ({
    field: pathToString(violation.field),
    rule: violation.ruleId,
    message: violation.message,
  }));
}

/** The server's field violations of an INVALID_ARGUMENT (none for any other error). */
export function serverViolations(error: unknown): Violation[] {
  const connect = ConnectError.from(error);
  return connect.findDetails(BadRequestSchema).flatMap((details) =>
    details.fieldViolations.map((violation) => ({
      field: violation.field,
      rule: violation.reason,
      message: violation.description,
    })),
  );
}

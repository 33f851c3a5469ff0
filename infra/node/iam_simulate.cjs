// Decides AWS requests against identity policies with @cloud-copilot/iam-simulate (a maintained simulator of
// IAM's evaluation logic: actions, resource ARNs, wildcards, conditions).
// stdin: JSON [{principal, policies: [{name, policy}], resourcePolicy?, action, resource, context}]
// stdout: JSON [{result, errors}] in the same order. Used by the deploy rehearsal (tests/infra/rehearsal).
const { runSimulation } = require('@cloud-copilot/iam-simulate');

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const requests = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const answers = [];
  for (const request of requests) {
    const account = request.principal.split(':')[4];
    const simulation = await runSimulation({
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId: account },
        contextVariables: request.context || {},
      },
      identityPolicies: request.policies,
      resourcePolicy: request.resourcePolicy || undefined,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    }, {});
    answers.push({ result: simulation.overallResult || null, errors: simulation.errors || null });
  }
  process.stdout.write(JSON.stringify(answers));
}

main().catch((error) => { console.error(error); process.exit(1); });

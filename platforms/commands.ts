/** Commands that findings and plans on every platform quote, spelled once. */
export const SETUP_COMMAND = 'npx stigmer-setup --yes';
export const DOCTOR_COMMAND = 'npx stigmer-setup doctor';
